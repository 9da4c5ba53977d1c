#!/usr/bin/env bash
# Fixture clips for the LSE reference-protocol tests, cut from the bundled sample set with ffmpeg.
#   bash scripts/parity/eval/make_clips.sh OUT_DIR
# face25.mp4: astronaut_a as it is (H.264 + AAC, 25 fps, 256x256).
# face30.mp4: astronaut_b at 30 fps, placed off-centre in a 320x256 grey frame (the -r 25 conversion,
#             crop geometry away from the centre; read as 25 fps by the LRS2 script).
# cut.mp4:    astronaut_a at the left of a 320x256 frame, then astronaut_c at the right (a shot cut:
#             two face tracks in one clip).
# The committed files are the inputs of the committed numbers: re-make them only with the numbers.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../../.." && pwd)/dataset/video-retalking"
OUT=${1:?output folder}
mkdir -p "$OUT"
enc=(-c:v libx264 -preset medium -crf 20 -pix_fmt yuv420p -c:a aac -b:a 64k -ar 16000 -ac 1 -map_metadata -1
     -fflags +bitexact -flags:v +bitexact -flags:a +bitexact)
ffmpeg -nostdin -loglevel error -y -i "$SRC/astronaut_a.mp4" -c copy -map_metadata -1 "$OUT/face25.mp4"
ffmpeg -nostdin -loglevel error -y -i "$SRC/astronaut_b.mp4" \
  -vf "fps=30,pad=320:256:64:0:color=0x808080" "${enc[@]}" "$OUT/face30.mp4"
ffmpeg -nostdin -loglevel error -y -i "$SRC/astronaut_a.mp4" -i "$SRC/astronaut_c.mp4" -filter_complex \
  "[0:v]pad=320:256:0:0:color=0x808080[v0];[1:v]pad=320:256:64:0:color=0x303030[v1];[v0][0:a][v1][1:a]concat=n=2:v=1:a=1[v][a]" \
  -map "[v]" -map "[a]" "${enc[@]}" "$OUT/cut.mp4"
ls -l "$OUT"
