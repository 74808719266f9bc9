//! Pieces several pages share: approval cards, artifact and diff views.

pub mod approval_card;
pub mod artifact;
pub mod chat;
