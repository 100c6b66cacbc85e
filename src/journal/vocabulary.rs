//! The journal's closed vocabularies: `Copy` enums whose JSON names are
//! fixed once, here declared by one macro, so that every name a journal
//! holds is spelt in one place and older spellings stay readable. Apart from
//! `event.rs` so that every file of the journal's vocabulary (events, watch
//! facts) can use it without importing each other.

/// Declares a journaled vocabulary: a `Copy` enum whose JSON names are
/// fixed here (`"name"`, plus older spellings still read), with `as_str`
/// and `Display` giving the same names.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $( $(#[$d:meta])* $v:ident = $s:literal $(| $alias:literal)*, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$d])* #[serde(rename = $s $(, alias = $alias)*)] $v, )*
        }

        impl $name {
            /// The journal's name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use vocabulary;
