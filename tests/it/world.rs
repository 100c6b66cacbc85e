//! Emulator fixture (being written).
