//! Private keys stay out of logs: [`v1::TlsCertificate`]'s `Debug` is written here
//! (code generation skips it) and redacts the key.

use std::fmt;

use crate::v1;

impl fmt::Debug for v1::TlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.private_key.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("TlsCertificate")
            .field("certificate_chain", &self.certificate_chain)
            .field("private_key", &key)
            .finish()
    }
}

#[cfg(test)]
mod tests;
