//! Whether a mobile punch was made where its rule allows: inside a geofence (a circle of
//! 50-5000 m or a polygon) or on a listed Wi-Fi access point.

use schemas::events::{GeoPoint, Geofence, LatLon, RuleOptions};

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres.
pub fn distance_m(a: &LatLon, b: &LatLon) -> f64 {
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dla = la2 - la1;
    let dlo = (b.longitude - a.longitude).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Ray casting on latitude/longitude, fine for the size of a workplace.
pub fn in_polygon(p: &LatLon, points: &[LatLon]) -> bool {
    let mut inside = false;
    let n = points.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (&points[i], &points[j]);
        if (a.latitude > p.latitude) != (b.latitude > p.latitude) {
            let x = (b.longitude - a.longitude) * (p.latitude - a.latitude)
                / (b.latitude - a.latitude)
                + a.longitude;
            if p.longitude < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

pub fn in_fence(p: &LatLon, fence: &Geofence) -> bool {
    match fence {
        Geofence::Circle {
            center, radius_m, ..
        } => distance_m(p, center) <= f64::from(*radius_m),
        Geofence::Polygon { points, .. } => in_polygon(p, points),
    }
}

/// Where a punch was, as far as the rule is concerned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The rule sets no place, or the punch is inside a geofence or on a listed Wi-Fi.
    InRange,
    /// Neither position nor Wi-Fi matches.
    OutOfRange,
}

/// Checks a position and BSSID against the rule's geofences and Wi-Fi list. A rule with
/// neither accepts every place; a punch without position or BSSID matches nothing.
pub fn place(options: &RuleOptions, location: Option<&GeoPoint>, bssid: Option<&str>) -> Place {
    if options.geofences.is_empty() && options.wifi.is_empty() {
        return Place::InRange;
    }
    let on_wifi = bssid.is_some_and(|b| {
        options
            .wifi
            .iter()
            .any(|ap| ap.bssid.eq_ignore_ascii_case(b.trim()))
    });
    let in_fence = location.is_some_and(|g| {
        let p = LatLon {
            latitude: g.latitude,
            longitude: g.longitude,
        };
        options.geofences.iter().any(|f| in_fence(&p, f))
    });
    if on_wifi || in_fence {
        Place::InRange
    } else {
        Place::OutOfRange
    }
}

/// Why a punch is out of range, in words a person at the door understands: how far the
/// nearest circle is, which polygon they are outside, which Wi-Fi is not listed.
pub fn why_out_of_range(
    options: &RuleOptions,
    location: Option<&GeoPoint>,
    bssid: Option<&str>,
) -> String {
    let mut why = Vec::new();
    match location {
        Some(g) if !options.geofences.is_empty() => {
            let p = LatLon {
                latitude: g.latitude,
                longitude: g.longitude,
            };
            let accuracy = g.accuracy_m.round();
            let nearest = options
                .geofences
                .iter()
                .map(|fence| match fence {
                    Geofence::Circle {
                        name,
                        center,
                        radius_m,
                    } => {
                        let m = (distance_m(&p, center) - f64::from(*radius_m)).max(0.0);
                        (m, format!("{} m outside geofence {name}", m.round()))
                    }
                    Geofence::Polygon { name, points } => {
                        let m = points
                            .iter()
                            .map(|q| distance_m(&p, q))
                            .fold(f64::INFINITY, f64::min);
                        let text = format!(
                            "outside geofence {name}, {} m from its nearest corner",
                            m.round()
                        );
                        (m, text)
                    }
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, text)) = nearest {
                why.push(format!("{text} (position accurate to {accuracy} m)"));
            }
        }
        Some(_) => why.push("the rule lists no geofence".to_owned()),
        None if !options.geofences.is_empty() => why.push("no position was sent".to_owned()),
        None => {}
    }
    match bssid {
        Some(b) if !options.wifi.is_empty() => {
            why.push(format!("Wi-Fi {} is not one of the rule's", b.trim()));
        }
        Some(_) => {}
        None if !options.wifi.is_empty() => why.push("no Wi-Fi was sent".to_owned()),
        None => {}
    }
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(latitude: f64, longitude: f64) -> LatLon {
        LatLon {
            latitude,
            longitude,
        }
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let d = distance_m(&ll(31.0, 121.0), &ll(32.0, 121.0));
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
    }

    #[test]
    fn circle_edges() {
        let fence = Geofence::Circle {
            name: "hq".into(),
            center: ll(31.2304, 121.4737),
            radius_m: 100,
        };
        // 0.0008° of latitude is about 89 m; 0.001° about 111 m.
        assert!(in_fence(&ll(31.2312, 121.4737), &fence));
        assert!(!in_fence(&ll(31.2314, 121.4737), &fence));
    }

    #[test]
    fn polygon_inside_and_out() {
        let square = [ll(0.0, 0.0), ll(0.0, 1.0), ll(1.0, 1.0), ll(1.0, 0.0)];
        assert!(in_polygon(&ll(0.5, 0.5), &square));
        assert!(!in_polygon(&ll(1.5, 0.5), &square));
        assert!(!in_polygon(&ll(0.5, 0.5), &square[..2]));
    }
}
