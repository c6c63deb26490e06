//! Typed queries over the `orgs` read model (the views `rm.<table>`), for the API, the console and the tools.
