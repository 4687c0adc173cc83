//! `migrate`: moving a live host's data into the planned layout.

pub mod copy;
pub mod verify;
