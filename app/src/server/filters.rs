//! Filters of the dashboard's plain HTTP routes (exports, uploads) as typed values, from the
//! strings a query string sends. Each error names its field, so the route can answer 400 with
//! it. (The queue's own filters are parsed by `discrepancies::storage_filter`.)

use chrono::NaiveDate;

use crate::domain::{excerpt, FieldError, VendorId};

/// A required vendor id.
pub fn vendor(value: &str) -> Result<VendorId, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new("vendor", "is required"));
    }
    VendorId::parse(value).map_err(|e| FieldError::new("vendor", e.to_string()))
}

/// A required `YYYY-MM-DD` date.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    optional_date(field, value)?.ok_or_else(|| FieldError::new(field, "is required (YYYY-MM-DD)"))
}

/// A `YYYY-MM-DD` date, or `None` when empty ("any").
pub fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            FieldError::new(
                field,
                format!("{:?} is not a date; use YYYY-MM-DD", excerpt(value)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_its_field() {
        assert_eq!(vendor("").unwrap_err().field, "vendor");
        assert_eq!(vendor("Bad Vendor!").unwrap_err().field, "vendor");
        assert_eq!(vendor(" acme ").unwrap().as_str(), "acme");
        assert_eq!(date("date", "").unwrap_err().field, "date");
        assert_eq!(date("date", "2026-02-30").unwrap_err().field, "date");
        assert_eq!(
            date("date", "2026-12-01").unwrap().to_string(),
            "2026-12-01"
        );
    }
}
