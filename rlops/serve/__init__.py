"""`rlops serve`: an OpenAI-compatible endpoint that serves what deployments/<policy>.yaml says and records every
interaction. Modules: config (settings), routing (who answers), backends (upstream, transformers, vllm), messages
(the OpenAI format at the edge), recording (the background queue), feedback (/v1/feedback), app (the loop without
HTTP), server (HTTP), render (`rlops deploy render`). Nothing here is imported until `rlops serve` runs."""
