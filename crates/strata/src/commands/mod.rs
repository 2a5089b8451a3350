pub mod container;
pub mod image;
pub mod system;
pub mod volume;
