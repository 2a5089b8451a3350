pub mod image;
pub mod system;
