#!/bin/sh
# Rebuilds qrcode-generator-2.0.4.min.js, the copy the binary embeds, from the
# published qrcode-generator-2.0.4.js beside it: drops what the console never
# calls (the HTML/SVG/ASCII/GIF renderers and the SJIS table builder: lines
# 455-728, 750-819 and 1818-2242), minifies with terser (copyright and licence
# lines kept), and checks that the result draws the very same QR codes.
# Needs node and npm (npx fetches terser from the npm registry).
set -eu
cd "$(dirname "$0")"
sed -e '455,728d' -e '750,819d' -e '1818,2242d' qrcode-generator-2.0.4.js > /tmp/qrcode-pruned.js
npx --yes terser@5.51.4 /tmp/qrcode-pruned.js --compress --mangle \
  --comments '/Copyright|MIT|license/i' -o qrcode-generator-2.0.4.min.js
node same-codes.js "$PWD/qrcode-generator-2.0.4.js" "$PWD/qrcode-generator-2.0.4.min.js"
