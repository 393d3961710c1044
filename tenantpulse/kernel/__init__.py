"""The kernel: errors, YAML reading, durations, child processes, serving, version. Imports nothing of ours
above it, so every layer can use it."""
