#!/bin/sh
# wordcount-sh: FILE protocol. Reads $INPUT_FILE, writes JSON to $OUTPUT_FILE.
set -eu
# wc prints: lines words bytes.
set -- $(wc -l -w -c < "$INPUT_FILE")
printf '{"lines": %s, "words": %s, "bytes": %s}\n' "$1" "$2" "$3" > "$OUTPUT_FILE"
