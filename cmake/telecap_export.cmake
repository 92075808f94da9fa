# The exporting outputs (OTLP/HTTP, the HTTP ingest output) and their HTTP client, as a library
# of their own: telecap_core and its installed package do not depend on cpp-httplib.
# Included by the top CMakeLists.txt before telecap_core is defined (it takes the two adapters
# out of the core's sources).
find_package(PkgConfig REQUIRED)
# Debian's cpp-httplib.pc adds -DCPPHTTPLIB_OPENSSL_SUPPORT and friends: every file that
# includes httplib.h must see them (the class layouts depend on them), so link this target.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

set(TELECAP_EXPORT_ADAPTERS ${PROJECT_SOURCE_DIR}/adapters/otlp_handler.cpp
                            ${PROJECT_SOURCE_DIR}/adapters/http_handler.cpp)
list(REMOVE_ITEM TELECAP_CORE_SOURCES ${TELECAP_EXPORT_ADAPTERS})
foreach(dir net export)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${dir} ${PROJECT_BINARY_DIR}/include/telecap/${dir}
         SYMBOLIC)
endforeach()
file(GLOB TELECAP_EXPORT_SOURCES CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/net/*.cpp ${PROJECT_SOURCE_DIR}/export/*.cpp)
add_library(telecap_export STATIC ${TELECAP_EXPORT_SOURCES} ${TELECAP_EXPORT_ADAPTERS})
add_library(telecap::export ALIAS telecap_export)
target_link_libraries(telecap_export PUBLIC telecap_core PRIVATE PkgConfig::HTTPLIB)
target_include_directories(telecap_export SYSTEM PRIVATE ${RAPIDJSON_INCLUDE_DIRS})
telecap_warnings(telecap_export)
