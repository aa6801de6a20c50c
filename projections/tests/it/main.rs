mod fixtures;
mod properties;
