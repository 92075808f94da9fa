# Tests of spawn/: the fixture programs and the spawn_tests binary.
# Include it from tests/CMakeLists.txt once telecap::core exists:
#     include(${CMAKE_CURRENT_LIST_DIR}/spawn.cmake)

include(GoogleTest)
if(NOT TARGET GTest::gtest_main)
    find_package(GTest REQUIRED)
endif()

set(TELECAP_SPAWN_FIXTURES exit_with signal_echo fd_report write_lines spawn_grandchild
    spawn_tree)

add_executable(spawn_tests
    ${CMAKE_CURRENT_LIST_DIR}/unit/spawn_restart_policy_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/unit/spawn_signals_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/integration/spawn_test.cpp)
target_link_libraries(spawn_tests PRIVATE telecap::core GTest::gtest_main)
# The guard tests run the built telecap-guard (absent when tests build against an install).
if(TARGET telecap-guard)
    target_sources(spawn_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/integration/guard_test.cpp)
    target_compile_definitions(spawn_tests PRIVATE TELECAP_GUARD_BIN="$<TARGET_FILE:telecap-guard>")
    add_dependencies(spawn_tests telecap-guard)
endif()
if(COMMAND telecap_warnings)
    telecap_warnings(spawn_tests)
endif()

# Each fixture is target fixture_<name>; its path reaches the tests as FIXTURE_<NAME>.
foreach(name IN LISTS TELECAP_SPAWN_FIXTURES)
    add_executable(fixture_${name} ${CMAKE_CURRENT_LIST_DIR}/fixtures/${name}.cpp)
    if(COMMAND telecap_warnings)
        telecap_warnings(fixture_${name})
    endif()
    string(TOUPPER ${name} upper)
    target_compile_definitions(spawn_tests PRIVATE
        FIXTURE_${upper}="$<TARGET_FILE:fixture_${name}>")
    add_dependencies(spawn_tests fixture_${name})
endforeach()

gtest_discover_tests(spawn_tests PROPERTIES TIMEOUT 60 LABELS spawn)
