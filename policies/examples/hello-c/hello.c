/* hello-c: FILE protocol. Reads a name from $INPUT_FILE and writes
 * "Hello, NAME! (from C)" to $OUTPUT_FILE. Built by ../build-wasm.sh with
 * Debian's clang and wasi-libc: clang --target=wasm32-wasi -O2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *in_path = getenv("INPUT_FILE");
    const char *out_path = getenv("OUTPUT_FILE");
    if (!in_path || !out_path) {
        fprintf(stderr, "INPUT_FILE and OUTPUT_FILE must be set\n");
        return 2;
    }
    char name[256] = "";
    FILE *in = fopen(in_path, "r");
    if (!in) {
        perror(in_path);
        return 1;
    }
    size_t n = fread(name, 1, sizeof name - 1, in);
    fclose(in);
    name[n] = '\0';
    name[strcspn(name, "\r\n")] = '\0';
    FILE *out = fopen(out_path, "w");
    if (!out) {
        perror(out_path);
        return 1;
    }
    fprintf(out, "Hello, %s! (from C)\n", name[0] ? name : "world");
    return fclose(out) == 0 ? 0 : 1;
}
