//! Typed queries over delivery's tables (messages, attempts, endpoints' delivery state), for the API's delivery log, summaries and replay, and the console.
