"""What the CLI and the web do with a configuration document, in one place: apply it to the
store, export the store as one, edit one item of it. The config package reads and checks
documents and knows nothing of the store; the store keeps what these functions give it."""
