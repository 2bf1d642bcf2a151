//! A set of permissions as a bit set: membership tests cost one AND.

use crate::catalog::{CATALOG, index_of};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u128);

impl PermissionSet {
    pub fn empty() -> Self {
        Self(0)
    }

    /// Keys outside the catalog are ignored: an unknown permission grants nothing.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::empty();
        for key in keys {
            if let Some(i) = index_of(key) {
                set.0 |= 1 << i;
            }
        }
        set
    }

    pub fn contains(&self, key: &str) -> bool {
        index_of(key).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn keys(&self) -> Vec<&'static str> {
        CATALOG.iter().filter(|p| self.contains(p.key)).map(|p| p.key).collect()
    }
}
