//! `POST /mobile/punch`: a phone's punch as JSON, decided by [`crate::mobile::decide`]
//! over the tenant's book in the gateway's [`crate::view`].

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ledger::Expected;
use schemas::ids::EventId;
use schemas::{Actor, Envelope};

use super::{Gateway, json, unavailable};

/// The largest phone request read.
const MAX_BODY: usize = 64 * 1024;

/// `POST /mobile/punch`: a phone's punch as JSON; answered `201` with the recorded punch
/// and where it stands (in range, location exception, field work), or refused with a
/// reason: `400` a malformed request, `404` an unknown person, `422` the rule refuses.
pub async fn punch(State(gw): State<Gateway>, body: Body) -> Response {
    use crate::mobile::{self, Refusal};
    let refused = |status: StatusCode, reason: String| {
        json(
            status,
            &serde_json::json!({ "status": "refused", "reason": reason }),
        )
    };
    // A punch is a few hundred bytes; anything much larger is not one.
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("not a mobile punch: a body of at most {MAX_BODY} bytes expected"),
            );
        }
    };
    let req: mobile::MobilePunchRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return refused(StatusCode::BAD_REQUEST, format!("not a mobile punch: {e}"));
        }
    };
    let tenant = match mobile::validate(&req) {
        Ok((tenant, _)) => tenant,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let now = gw.now();
    let view = &gw.inner.view;
    let decided = async {
        let decided = view
            .with_book(&tenant, |book| mobile::decide(book, &req, now))
            .await?;
        if decided.is_ok() || matches!(decided, Err(Refusal::Invalid(_))) {
            return Ok(decided);
        }
        // A refusal is not left to the view's delay: a person hired or a rule changed
        // a moment ago counts.
        view.sync_book(&tenant).await?;
        view.with_book(&tenant, |book| mobile::decide(book, &req, now))
            .await
    }
    .await;
    let decided = match decided {
        Ok(decided) => decided,
        Err(e) => {
            tracing::error!(%tenant, error = %e, "cannot read the tenant's rules");
            return unavailable();
        }
    };
    let ledger = gw.ledger();
    match decided {
        Ok(accepted) => {
            let person = accepted
                .punch
                .person_id
                .clone()
                .expect("a phone punch names its person");
            let id = EventId::derived(&["mobile-punch", &accepted.punch.punch_id.to_string()]);
            let envelope = Envelope::new(
                tenant.clone(),
                Actor::Person { person_id: person },
                schemas::events::PunchRecorded {
                    punch: accepted.punch.clone(),
                },
                now,
            )
            .with_id(id);
            match ledger.append(&envelope, Expected::Any).await {
                Ok(appended) => {
                    let p = &accepted.punch;
                    tracing::info!(%tenant, person = %accepted.person, outcome = ?accepted.outcome, "mobile punch");
                    json(
                        StatusCode::CREATED,
                        &serde_json::json!({
                            "status": "recorded",
                            "punch_id": p.punch_id,
                            "person": accepted.person,
                            "instant": p.instant,
                            "local_time": p.local_time,
                            "zone": p.zone,
                            "rule_id": accepted.rule_id,
                            "rule_version": accepted.rule_version,
                            "outcome": accepted.outcome,
                            "duplicate": appended.duplicate,
                        }),
                    )
                }
                Err(e) => {
                    tracing::error!(%tenant, error = %e, "mobile punch not stored");
                    unavailable()
                }
            }
        }
        Err(Refusal::ByRule(event)) => {
            let reason = Refusal::ByRule(event.clone()).to_string();
            let id = EventId::derived(&[
                "mobile-refused",
                event.person_id.as_str(),
                &event.instant.to_rfc3339(),
            ]);
            let envelope = Envelope::new(
                tenant.clone(),
                Actor::Person {
                    person_id: event.person_id.clone(),
                },
                *event,
                now,
            )
            .with_id(id);
            // The refusal is the answer only once it is on record.
            if let Err(e) = ledger.append(&envelope, Expected::Any).await {
                tracing::error!(%tenant, error = %e, "refused mobile punch not recorded");
                return unavailable();
            }
            tracing::info!(%tenant, %reason, "mobile punch refused");
            refused(StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
        Err(e @ Refusal::Invalid(_)) => refused(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ Refusal::NotPunching(projections::book::NotPunching::UnknownPerson(_))) => {
            refused(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
