//! Typed queries over the `apps` read model (the views `rm.<table>`), for the API, the console and the tools.
