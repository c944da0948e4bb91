//! Contacts' text commands: `ACK 42`, `RESOLVE 42`, `ESC 42`.
