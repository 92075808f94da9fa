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
