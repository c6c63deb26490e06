//! Typed queries over the `event_counts` read model (the views `rm.<table>`), for the API, the console and the tools.
