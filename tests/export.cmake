# Tests of the exporting outputs (telecap_export): unit tests, tests against a local httplib
# server, and the strict OTLP schema check with npm's OTLP protobufjs module.
file(GLOB TELECAP_EXPORT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/export/*_test.cpp)
add_executable(export_tests ${TELECAP_EXPORT_TESTS})
target_link_libraries(export_tests PRIVATE telecap_export PkgConfig::HTTPLIB GTest::gtest_main)
target_include_directories(export_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_include_directories(export_tests SYSTEM PRIVATE ${RAPIDJSON_INCLUDE_DIRS})
gtest_discover_tests(export_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sanitize TIMEOUT 60)

# Writes sample OTLP bodies; tests/otlp/run_check.sh installs the npm packages (npm ci) and
# runs tests/otlp/check_otlp.js over them. No network for npm is a failure, not a skip.
add_executable(otlp_dump_bodies ${CMAKE_CURRENT_SOURCE_DIR}/otlp/dump_bodies.cpp)
target_link_libraries(otlp_dump_bodies PRIVATE telecap_export)
find_program(TELECAP_NODE node)
add_test(NAME otlp_schema
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/otlp/run_check.sh
                 $<TARGET_FILE:otlp_dump_bodies> ${CMAKE_CURRENT_BINARY_DIR}/otlp_bodies)
set_tests_properties(otlp_schema PROPERTIES TIMEOUT 300 LABELS otlp)
