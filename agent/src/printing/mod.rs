//! Label printing, the pure part: `[[label]]` templates and print jobs from MQTT
//! (`…/gateway/<id>/print/<printer>`, contracts.md §2) and from stations, turned into the exact
//! bytes for a printer. The durable queue is in the store ([`crate::store::print_jobs`]); the
//! printer I/O (status polling, sending each job once when the printer is ready) is a device's
//! job: [`crate::devices::printer`] and [`crate::devices::bridged_printer`].
//!
//! - [`job`]: a print request (JSON) → the exact bytes for the printer, or why not (pure).

pub(crate) mod job;

use std::path::Path;

use crate::units::ConfigIssue;
use serde::Deserialize;

/// A `[[label]]`: a named ZPL template with `{{field}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelConfig {
    pub(crate) name: String,
    /// The template inline…
    pub(crate) zpl: Option<String>,
    /// …or in a file (relative to the config file).
    pub(crate) file: Option<std::path::PathBuf>,
    /// Keep the template in the printer as a stored format under this name (`^DF`, sent at each
    /// connection); labels then carry only their data (`^XF`).
    pub(crate) store_as: Option<String>,
}

impl LabelConfig {
    /// Reads the file (if any) into `zpl` and checks the template.
    pub(crate) fn load(&mut self, base: &Path) -> Result<(), ConfigIssue> {
        match (&self.zpl, &self.file) {
            (Some(_), Some(_)) => return Err(ConfigIssue::new("file", "give `zpl` or `file`, not both")),
            (None, None) => return Err(ConfigIssue::new("zpl", "give the template as `zpl` or in a `file`")),
            (None, Some(file)) => {
                let path = crate::units::resolve(base, file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigIssue::new("file", format!("cannot read {}: {e}", path.display())))?;
                self.zpl = Some(text);
            }
            (Some(_), None) => {}
        }
        let zpl = self.zpl.as_deref().unwrap_or_default();
        firmware_bridge::printer::label::placeholders(zpl).map_err(|e| ConfigIssue::new("zpl", e.to_string()))?;
        if let Some(name) = &self.store_as
            && !firmware_bridge::printer::label::valid_format_name(name)
        {
            return Err(ConfigIssue::new(
                "store_as",
                format!("`{name}` is not a ZPL format name: 1 to 8 letters, digits or `_`"),
            ));
        }
        Ok(())
    }

    /// The bytes of one label with `data`: the whole format, or the recall of the stored one.
    pub(crate) fn render(
        &self,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<u8>, firmware_bridge::printer::label::LabelError> {
        match &self.store_as {
            Some(name) => firmware_bridge::printer::label::recall_format(name, self.template(), data),
            None => firmware_bridge::printer::label::render(self.template(), data),
        }
    }

    /// The stored-format definition to send to a printer at connection, if any.
    pub(crate) fn definition(&self) -> Option<Vec<u8>> {
        let name = self.store_as.as_ref()?;
        firmware_bridge::printer::label::define_format(name, self.template()).ok()
    }

    pub(crate) fn template(&self) -> &str {
        self.zpl.as_deref().unwrap_or_default()
    }
}
