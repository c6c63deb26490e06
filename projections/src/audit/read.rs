//! Typed queries over the `audit` read model (the views `rm.<table>`), for the API, the console and the tools.
