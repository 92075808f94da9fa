// The limit telecap is measured against: read, split on '\n', and parse each TELEMETRY: line
// with RapidJSON (in situ on a copy, iterative, NaN/Infinity allowed) into a handler that does
// nothing. No normalization, no output. Prints the number of parsed lines.
#include <fcntl.h>
#include <rapidjson/reader.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

struct null_handler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, null_handler> {
    bool Default() { return true; }
};

std::size_t parsed = 0, failed = 0;
std::string scratch;

void on_line(std::string_view line) {
    constexpr std::string_view prefix = "TELEMETRY:";
    if (line.substr(0, prefix.size()) != prefix) return;
    scratch.assign(line.substr(prefix.size()));
    scratch.push_back('\0');
    null_handler h;
    rapidjson::Reader reader;
    rapidjson::InsituStringStream in(scratch.data());
    constexpr unsigned flags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag |
                               rapidjson::kParseNanAndInfFlag |
                               rapidjson::kParseValidateEncodingFlag;
    if (reader.Parse<flags>(in, h).IsError())
        ++failed;
    else
        ++parsed;
}

}  // namespace

int main(int argc, char** argv) {
    const int fd = argc > 1 ? ::open(argv[1], O_RDONLY) : 0;
    if (fd < 0) {
        std::perror("open");
        return 2;
    }
    static char buf[64 * 1024];
    std::string partial;
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        std::string_view chunk(buf, static_cast<std::size_t>(n));
        while (!chunk.empty()) {
            const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
            if (!nl) {
                partial.append(chunk);
                break;
            }
            const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - chunk.data());
            if (partial.empty()) {
                on_line(chunk.substr(0, len));
            } else {
                partial.append(chunk.substr(0, len));
                on_line(partial);
                partial.clear();
            }
            chunk.remove_prefix(len + 1);
        }
    }
    if (!partial.empty()) on_line(partial);
    std::printf("parsed %zu failed %zu\n", parsed, failed);
    return 0;
}
