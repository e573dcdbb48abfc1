//! The web page (being built: see the serve issue). Placeholder with no routes.

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
