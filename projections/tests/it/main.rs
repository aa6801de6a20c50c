mod fixtures;
mod fold_laws;
mod properties;
mod queries;
mod worker;
