//! What is known about a track besides its sound.
//!
//! Owns: [`tags`], the container's own tags (ID3v2/v1, Vorbis comments, MP4 atoms) normalised
//! to one small struct. Later: optional on-line look-ups, cached in the store.

pub mod tags;
