//! PowerShell script for the built-in IKEv2 client of Windows.
//!
//! Cmdlets (learn.microsoft.com, PKI and VpnClient modules):
//! `Import-Certificate -FilePath F -CertStoreLocation Cert:\LocalMachine\Root`
//! for the CA (machine store: the IKEv2 client checks the gateway against
//! it); `Import-PfxCertificate -FilePath F -CertStoreLocation
//! Cert:\LocalMachine\My -Password S` for the user's bundle with
//! `MachineCertificate` authentication; `Add-VpnConnection -Name -ServerAddress
//! -TunnelType Ikev2 -AuthenticationMethod Eap|MachineCertificate
//! -EncryptionLevel Required` (Eap without an EAP XML is EAP-MSCHAPv2);
//! `Set-VpnConnectionIPsecConfiguration` with the six algorithm values
//! chosen in [`super::algs::windows`]; `-SplitTunneling` and
//! `Add-VpnConnectionRoute -DestinationPrefix` for the gateway's subnets.
//! Windows cannot do certificate plus EAP-MSCHAPv2 in one connection.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::{ClientAuth, Output, Profile, ProfileError, algs};

/// A PowerShell single-quoted string literal (`'` doubled).
fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(super) fn render(p: &Profile) -> Result<Output, ProfileError> {
    let method = match p.creds.auth {
        ClientAuth::Eap => "Eap",
        ClientAuth::Cert => "MachineCertificate",
        ClientAuth::CertEap => {
            return Err(ProfileError::Unsupported(
                "the Windows IKEv2 client cannot authenticate with a certificate and then EAP-MSCHAPv2; use --auth eap or --auth cert".into(),
            ));
        }
        ClientAuth::EapTls => {
            return Err(ProfileError::Unsupported(
                "the Windows profile cannot set up EAP-TLS yet (it needs an EAP configuration XML); use --auth cert with a gateway that checks certificates in IKE".into(),
            ));
        }
    };
    let suite = algs::windows(&p.gateway.ike_proposals, &p.gateway.esp_proposals)?;
    let mut o = String::new();
    o.push_str(&format!(
        "# oxisec VPN profile for {} (gateway {}, connection {}).\n",
        p.creds.user.replace(['\r', '\n'], " "),
        p.gateway.address,
        p.gateway.connection
    ));
    o.push_str(
        "# Run in an elevated PowerShell: powershell -ExecutionPolicy Bypass -File <this file>\n",
    );
    o.push_str("#Requires -RunAsAdministrator\n$ErrorActionPreference = 'Stop'\n\n");
    o.push_str(&format!("$Name = {}\n", ps_quote(&p.name)));
    o.push_str(&format!("$Server = {}\n\n", ps_quote(&p.gateway.address)));
    if let Some(ca) = &p.creds.ca_der {
        o.push_str("# The CA that signed the gateway's certificate.\n");
        o.push_str("$CaFile = Join-Path $env:TEMP 'oxisec-ca.cer'\n");
        o.push_str(&format!(
            "[IO.File]::WriteAllBytes($CaFile, [Convert]::FromBase64String('{}'))\n",
            STANDARD.encode(ca)
        ));
        o.push_str("Import-Certificate -FilePath $CaFile -CertStoreLocation Cert:\\LocalMachine\\Root | Out-Null\n");
        o.push_str("Remove-Item $CaFile\n\n");
    }
    if p.creds.auth.uses_cert() {
        let p12 = p.creds.p12.as_ref().ok_or_else(|| {
            ProfileError::Config("certificate authentication needs the PKCS#12 bundle".into())
        })?;
        o.push_str("# The user's certificate and key.\n");
        o.push_str("$P12File = Join-Path $env:TEMP 'oxisec-user.p12'\n");
        o.push_str(&format!(
            "[IO.File]::WriteAllBytes($P12File, [Convert]::FromBase64String('{}'))\n",
            STANDARD.encode(p12.as_slice())
        ));
        o.push_str("$P12Pass = Read-Host -AsSecureString 'Passphrase of the PKCS#12 bundle'\n");
        o.push_str("Import-PfxCertificate -FilePath $P12File -CertStoreLocation Cert:\\LocalMachine\\My -Password $P12Pass | Out-Null\n");
        o.push_str("Remove-Item $P12File\n\n");
    }
    o.push_str("Remove-VpnConnection -Name $Name -Force -ErrorAction SilentlyContinue\n");
    let split = if p.gateway.subnets.is_empty() {
        ""
    } else {
        " -SplitTunneling"
    };
    o.push_str(&format!(
        "Add-VpnConnection -Name $Name -ServerAddress $Server -TunnelType Ikev2 -AuthenticationMethod {method} -EncryptionLevel Required{split}{} -Force\n",
        if p.creds.auth.uses_eap() { " -RememberCredential" } else { "" }
    ));
    o.push_str(&format!(
        "Set-VpnConnectionIPsecConfiguration -ConnectionName $Name -AuthenticationTransformConstants {} -CipherTransformConstants {} -EncryptionMethod {} -IntegrityCheckMethod {} -DHGroup {} -PfsGroup {} -Force\n",
        suite.authentication_transform,
        suite.cipher_transform,
        suite.encryption_method,
        suite.integrity_check_method,
        suite.dh_group,
        suite.pfs_group
    ));
    for s in p.gateway.subnet_strings() {
        // Add-VpnConnectionRoute takes prefixes only.
        if s.contains('/') {
            o.push_str(&format!(
                "Add-VpnConnectionRoute -ConnectionName $Name -DestinationPrefix {}\n",
                ps_quote(&s)
            ));
        }
    }
    o.push_str(&format!(
        "Write-Host \"VPN connection '$Name' created{}.\"\n",
        if p.creds.auth.uses_eap() {
            format!(
                "; connect as {}",
                p.creds.user.replace(['"', '`', '$', '\r', '\n'], "")
            )
        } else {
            String::new()
        }
    ));
    Ok(Output {
        main: Zeroizing::new(o.into_bytes()),
        companions: Vec::new(),
        instructions: "Run the script in an elevated PowerShell on the Windows machine.\n".into(),
    })
}
