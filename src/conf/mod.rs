//! Managing a host's real containers/storage.conf the way a careful admin would: find the
//! files containers/storage reads for the caller, change only the keys a plan owns
//! (comments, order and other keys stay byte for byte), never strand a populated store,
//! and never write to a NixOS-managed file.

pub mod edit;
pub mod resolve;
pub mod store;
