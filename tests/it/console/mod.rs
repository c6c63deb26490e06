//! The console: its pages as rendered by the router and read with an HTML
//! parser (`pages`), and the seeds' flows in a real browser (`browser`).

mod browser;
mod pages;
