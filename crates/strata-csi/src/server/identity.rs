//! The Identity service: who the plugin is and what it offers.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Shared;
use crate::pb::plugin_capability::{self, Service, VolumeExpansion, service, volume_expansion};
use crate::pb::{self, PluginCapability};

/// The driver's name, as a StorageClass's provisioner names it.
pub const DRIVER_NAME: &str = "csi.strata.dev";

pub struct Identity(pub Arc<Shared>);

#[tonic::async_trait]
impl pb::identity_server::Identity for Identity {
    async fn get_plugin_info(
        &self,
        _: Request<pb::GetPluginInfoRequest>,
    ) -> Result<Response<pb::GetPluginInfoResponse>, Status> {
        Ok(Response::new(pb::GetPluginInfoResponse {
            name: DRIVER_NAME.to_owned(),
            vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<pb::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<pb::GetPluginCapabilitiesResponse>, Status> {
        let service = |t: service::Type| PluginCapability {
            r#type: Some(plugin_capability::Type::Service(Service {
                r#type: t as i32,
            })),
        };
        let capabilities = vec![
            service(service::Type::ControllerService),
            service(service::Type::VolumeAccessibilityConstraints),
            PluginCapability {
                r#type: Some(plugin_capability::Type::VolumeExpansion(VolumeExpansion {
                    r#type: volume_expansion::Type::Online as i32,
                })),
            },
        ];
        Ok(Response::new(pb::GetPluginCapabilitiesResponse {
            capabilities,
        }))
    }

    /// Ready once a worker can reach the store.
    async fn probe(
        &self,
        _: Request<pb::ProbeRequest>,
    ) -> Result<Response<pb::ProbeResponse>, Status> {
        self.0.workers.run(|s| s.space()).await?;
        Ok(Response::new(pb::ProbeResponse { ready: Some(true) }))
    }
}
