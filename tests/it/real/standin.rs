//! The stand-in `fs_cli` kept faithful to the real FreeSWITCH.
