/* Test helper for the C emitter's formatting: reads lines from stdin and prints, one line each,
 *   d <16 hex digits>  -> the double with those bits as the emitter writes it
 *   s <hex bytes>      -> the string with those bytes as the emitter escapes it (with quotes)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "telecap_emit.h"

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int main(void) {
    static char line[65536], bytes[32768], out[262144];
    while (fgets(line, sizeof line, stdin)) {
        telecap__buf b;
        size_t n = strcspn(line, "\n"), i, k = 0;
        line[n] = '\0';
        b.p = out;
        b.n = 0;
        b.cap = sizeof out;
        b.overflow = 0;
        for (i = 2; i + 1 < n; i += 2)
            bytes[k++] = (char)(hexval(line[i]) * 16 + hexval(line[i + 1]));
        bytes[k] = '\0';
        if (line[0] == 'd') {
            uint64_t bits = 0;
            double d;
            for (i = 0; i < k; ++i) bits = (bits << 8) | (unsigned char)bytes[i];
            memcpy(&d, &bits, sizeof d);
            telecap__json_double(&b, d);
        } else {
            telecap__json_str(&b, bytes);
        }
        fwrite(out, 1, b.n, stdout);
        fputc('\n', stdout);
    }
    return 0;
}
