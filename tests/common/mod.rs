//! Helpers shared by the behaviour tests, by role: process probes
//! (`proc`), scratch files and pid notes (`files`), helper processes
//! (`helper`), and one test in every mode (`modes`).
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

mod files;
mod helper;
mod modes;
mod proc;

pub use files::*;
pub use helper::*;
pub use modes::*;
pub use proc::*;
