//! Typed queries over the `keys` read model (the views `rm.<table>`), for the API, the console and the tools.
