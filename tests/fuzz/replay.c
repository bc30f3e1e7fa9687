/* SPDX-License-Identifier: MIT */
/*
 * replay.c — runs a libFuzzer harness over its committed corpus without
 * libFuzzer, so that "make check" (and the ASan/UBSan build of it) replays
 * every corpus file through the parser.  With arguments, replays those
 * files instead.  Exit status 0 when every input ran; a crash or a
 * sanitizer report fails the test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf;
        long n;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -1;
        }
        /* An exact-size heap copy, so that ASan sees any read past the end. */
        buf = malloc((size_t) n ?: 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        (void) LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;

        alloc_init();
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        if (replay_file(argv[i]) < 0)
                                return 1;
                printf("replayed %d input(s)\n", argc - 1);
                return 0;
        }
        DIR *d = opendir(FUZZ_CORPUS);
        struct dirent *de;
        if (!d) {
                fprintf(stderr, "%s: %s\n", FUZZ_CORPUS, strerror(errno));
                return 1;
        }
        while ((de = readdir(d))) {
                char path[4096];
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s", FUZZ_CORPUS, de->d_name);
                if (replay_file(path) < 0) {
                        closedir(d);
                        return 1;
                }
                n++;
        }
        closedir(d);
        printf("replayed %u input(s) from %s\n", n, FUZZ_CORPUS);
        return n > 0 ? 0 : 1;
}
