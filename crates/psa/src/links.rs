//! Where an operator opens an entity in the PSA's own web interface, from the dashboard's
//! items table. Derived from the integration's settings, never fetched: the PSA is not asked
//! anything, and only an id the PSA writes as digits is put in a link.

use neo_domain::backfill::EntityType;
use serde_json::Value;

/// Whether entities of this type get a link (tickets so far).
pub fn links_to(entity: EntityType) -> bool {
    entity == EntityType::Ticket
}

/// The web address of ticket `id` in the PSA `psa` described by `config`:
/// - ConnectWise: the service ticket page, on the site's web host (the API host `api-na…` is
///   `na…` for people);
/// - Autotask: the ticket detail on the zone's web host (`webservices5.autotask.net` →
///   `ww5.autotask.net`; unknown until a zone URL is stored);
/// - HaloPSA: the ticket page under the instance root.
///
/// `None` for other entity types, an id that is not all digits, or settings that do not say
/// where.
pub fn record_url(psa: &str, config: &Value, entity: EntityType, id: &str) -> Option<String> {
    if !links_to(entity) || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let setting = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
    };
    match psa {
        "connectwise" => {
            let site = setting("site_url")?;
            let (scheme, host) = site.split_once("://")?;
            let host = host.strip_prefix("api-").unwrap_or(host);
            Some(format!(
                "{scheme}://{host}/v4_6_release/services/system_io/Service/fv_sr100_request.rsp?service_recid={id}"
            ))
        }
        "autotask" => {
            let zone = setting("zone_url")?;
            let (scheme, rest) = zone.split_once("://")?;
            let host = rest.split('/').next()?;
            let web = match host.strip_prefix("webservices") {
                Some(n) => format!("ww{n}"),
                None => host.to_owned(),
            };
            Some(format!(
                "{scheme}://{web}/Mvc/ServiceDesk/TicketDetail.mvc?ticketId={id}"
            ))
        }
        "halopsa" => Some(format!("{}/ticket?id={id}", setting("url")?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_by_psa() {
        let t = EntityType::Ticket;
        assert_eq!(
            record_url("connectwise", &json!({"site_url": "https://api-na.myconnectwise.net/"}), t, "590").as_deref(),
            Some("https://na.myconnectwise.net/v4_6_release/services/system_io/Service/fv_sr100_request.rsp?service_recid=590")
        );
        assert_eq!(
            record_url(
                "autotask",
                &json!({"zone_url": "https://webservices5.autotask.net/ATServicesRest/"}),
                t,
                "7"
            )
            .as_deref(),
            Some("https://ww5.autotask.net/Mvc/ServiceDesk/TicketDetail.mvc?ticketId=7")
        );
        assert_eq!(
            record_url(
                "halopsa",
                &json!({"url": "https://acme.halopsa.com"}),
                t,
                "12"
            )
            .as_deref(),
            Some("https://acme.halopsa.com/ticket?id=12")
        );
        // No zone stored yet, another entity type, an id that is not digits, a URL that is
        // not http(s): no link.
        assert_eq!(
            record_url("autotask", &json!({"username": "u"}), t, "7"),
            None
        );
        assert_eq!(
            record_url(
                "halopsa",
                &json!({"url": "https://acme.halopsa.com"}),
                EntityType::Company,
                "12"
            ),
            None
        );
        assert_eq!(
            record_url(
                "halopsa",
                &json!({"url": "https://acme.halopsa.com"}),
                t,
                "12\"><script>"
            ),
            None
        );
        assert_eq!(
            record_url("halopsa", &json!({"url": "javascript:alert(1)"}), t, "12"),
            None
        );
    }
}
