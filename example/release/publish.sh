#!/bin/sh
# The publisher's side of a release manifest, all local (no network): make a key pair, publish two
# versions, roll the second out 10 % → 50 % → 100 %, pull it, and check the folder as an instance
# would. Run from the repository:
#   npm run build && sh example/release/publish.sh
# Then upload the folder with your own tools (docs/releases.md, "Publishing"): artifacts first,
# then manifest.json.minisig, then manifest.json.
set -eu
cli=$(cd "$(dirname "$0")/../.." && pwd)/dist/src/cli/main.js
overseer() { node "$cli" "$@"; }   # in your project: npx overseer, or node_modules/.bin/overseer
work=$(mktemp -d "${TMPDIR:-/tmp}/overseer-release-example.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir dist

# 1. A key pair, once. The secret key is encrypted with the password (minisign's format and cost:
#    `minisign -S -s release.key` can use it too). Keep it out of the release folder.
export MINISIGN_PASSWORD='an example password'   # in CI: a secret variable, or --password-file
overseer release keygen --public-key release.pub --secret-key release.key

# 2. Version 1.0.0 for everyone: create hashes and sizes the artifact, writes dist/manifest.json,
#    and --key signs it in the same step (dist/manifest.json.minisig).
echo 'console.log("app 1.0.0")' > dist/app-1.0.0.mjs
overseer release create --manifest dist/manifest.json --version 1.0.0 dist/app-1.0.0.mjs --key release.key

# 3. Version 1.1.0 to 10 % of the instances of channel stable, then 50 %, then all of them.
#    Each step is a new, signed manifest with a higher sequence; nothing is uploaded again but it.
echo 'console.log("app 1.1.0")' > dist/app-1.1.0.mjs
overseer release create --manifest dist/manifest.json --version 1.1.0 --rollout 10 dist/app-1.1.0.mjs --key release.key
overseer release rollout --manifest dist/manifest.json 1.1.0 50 --key release.key
overseer release rollout --manifest dist/manifest.json 1.1.0 100 --key release.key

# 4. 1.1.0 turns out bad: pull it. Instances running it go back to 1.0.0 through a ready-first
#    handoff; no new version number is needed.
overseer release pull --manifest dist/manifest.json 1.1.0 --key release.key

# 5. What the instances will see, checked as they check it (signature, schema, expiry, every
#    artifact's size and sha256).
overseer release show --manifest dist/manifest.json
overseer release verify --manifest dist/manifest.json --public-key release.pub
if command -v minisign >/dev/null 2>&1; then minisign -V -p release.pub -m dist/manifest.json; fi
ls dist
