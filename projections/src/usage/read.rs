//! Typed queries over the `usage` read model (the views `rm.<table>`), for the API, the console and the tools.
