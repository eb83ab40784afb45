#!/usr/bin/env bash
# Installs pimg with its man pages and shell completions under PREFIX (default /usr/local):
#   scripts/install.sh [PREFIX]
# bin/pimg, share/man/man1/pimg*.1, and the bash, zsh and fish completions where those shells
# look for them. Everything comes from the same clap definitions as `pimg --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
cargo install --locked --path . --root "$prefix"
pimg=$prefix/bin/pimg
"$pimg" manpages "$prefix/share/man/man1" >/dev/null
install -d "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
    "$prefix/share/fish/vendor_completions.d"
"$pimg" completions bash >"$prefix/share/bash-completion/completions/pimg"
"$pimg" completions zsh >"$prefix/share/zsh/site-functions/_pimg"
"$pimg" completions fish >"$prefix/share/fish/vendor_completions.d/pimg.fish"
echo "installed $pimg, its man pages (man pimg) and bash, zsh and fish completions under $prefix"
