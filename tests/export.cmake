# The strict OTLP schema check of the OTLP/HTTP JSON bodies (the exporters' unit and receiver
# tests are in export_tests with the other tests/export/*_test.cpp).
# Writes sample OTLP bodies; tests/otlp/run_check.sh installs the npm packages (npm ci) and
# runs tests/otlp/check_otlp.js over them. No network for npm is a failure, not a skip.
add_executable(otlp_dump_bodies ${CMAKE_CURRENT_SOURCE_DIR}/otlp/dump_bodies.cpp)
target_link_libraries(otlp_dump_bodies PRIVATE telecap_export)
add_test(NAME otlp_schema
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/otlp/run_check.sh
                 $<TARGET_FILE:otlp_dump_bodies> ${CMAKE_CURRENT_BINARY_DIR}/otlp_bodies)
set_tests_properties(otlp_schema PROPERTIES TIMEOUT 300 LABELS otlp)

# The binary's -o otlp / otlp-logs / http against a local receiver; the bodies it sends are
# checked with the same schema checker (installed by otlp_schema, hence the dependency).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND AND TARGET telecap)
    add_test(NAME otlp_cli
             COMMAND ${Python3_EXECUTABLE} -m unittest -v tests/otlp/test_cli_exporters.py
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(otlp_cli PROPERTIES DEPENDS otlp_schema RESOURCE_LOCK npm
        ENVIRONMENT "TELECAP_BIN=$<TARGET_FILE:telecap>" TIMEOUT 120 LABELS otlp)
    set_tests_properties(otlp_schema PROPERTIES RESOURCE_LOCK npm)
endif()
