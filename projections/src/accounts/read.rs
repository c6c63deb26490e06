//! Typed queries over the `accounts` read model (the views `rm.<table>`), for the API, the console and the tools.
