"""The compliance frameworks the guardrails are mapped to, and the catalogue of each one's controls in scope.

A catalogue lists the controls of a framework that the configuration of cloud infrastructure can evidence
(its `scope` says which); an evidence report lists each of them, and says plainly which ones no rule here
covers. Identifiers are the frameworks' own: NIST SP 800-53 Rev. 5 `SC-28(1)`, SOC 2 (2017 Trust Services
Criteria) `CC6.1`, ISO/IEC 27001:2022 Annex A `A.8.24`, PCI DSS v4.0 `3.5.1`, HIPAA Security Rule
`164.312(a)(2)(iv)` and CIS AWS Foundations Benchmark v3.0.0 `2.1.4`. Titles are short forms of the
frameworks' own titles (SOC 2 and PCI DSS state criteria and requirements, not titles: a summary is given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    """One framework: its command-line name, full title, control-identifier shape and catalogue in scope."""

    name: str
    title: str
    id_pattern: str
    scope: str
    catalogue: dict[str, str]

    def valid_id(self, control: str) -> bool:
        return re.fullmatch(self.id_pattern, control) is not None


NIST_800_53 = Framework(
    name="nist-800-53", title="NIST SP 800-53 Rev. 5",
    id_pattern=r"(AC|AT|AU|CA|CM|CP|IA|IR|MA|MP|PE|PL|PM|PS|PT|RA|SA|SC|SI|SR)-\d{1,2}(\(\d{1,2}\))?",
    scope="a selection of base controls and enhancements of the AC, AU, CA, CM, CP, IA, RA, SA, SC and SI families: "
          "those the configuration of cloud infrastructure can evidence; the policy-and-procedure controls (-1), "
          "the rest of those families and the AT, IR, MA, MP, PE, PL, PM, PS, PT and SR families are out of scope",
    catalogue={
        "AC-2": "Account Management", "AC-3": "Access Enforcement", "AC-4": "Information Flow Enforcement",
        "AC-5": "Separation of Duties", "AC-6": "Least Privilege",
        "AC-6(1)": "Least Privilege | Authorize Access to Security Functions",
        "AC-6(2)": "Least Privilege | Non-privileged Access for Nonsecurity Functions",
        "AC-6(5)": "Least Privilege | Privileged Accounts",
        "AC-6(9)": "Least Privilege | Log Use of Privileged Functions",
        "AC-6(10)": "Least Privilege | Prohibit Non-privileged Users from Executing Privileged Functions",
        "AC-17": "Remote Access", "AC-21": "Information Sharing",
        "AU-2": "Event Logging", "AU-3": "Content of Audit Records", "AU-4": "Audit Log Storage Capacity",
        "AU-6": "Audit Record Review, Analysis, and Reporting", "AU-9": "Protection of Audit Information",
        "AU-10": "Non-repudiation", "AU-11": "Audit Record Retention", "AU-12": "Audit Record Generation",
        "CA-7": "Continuous Monitoring",
        "CM-2": "Baseline Configuration", "CM-3": "Configuration Change Control",
        "CM-3(2)": "Configuration Change Control | Testing, Validation, and Documentation of Changes",
        "CM-5": "Access Restrictions for Change", "CM-6": "Configuration Settings", "CM-7": "Least Functionality",
        "CM-8": "System Component Inventory", "CM-8(4)": "System Component Inventory | Accountability Information",
        "CM-14": "Signed Components",
        "CP-6": "Alternate Storage Site", "CP-9": "System Backup", "CP-10": "System Recovery and Reconstitution",
        "IA-2": "Identification and Authentication (Organizational Users)", "IA-5": "Authenticator Management",
        "IA-9": "Service Identification and Authentication",
        "RA-5": "Vulnerability Monitoring and Scanning", "SA-10": "Developer Configuration Management",
        "SC-5": "Denial-of-service Protection",
        "SC-5(2)": "Denial-of-service Protection | Capacity, Bandwidth, and Redundancy",
        "SC-7": "Boundary Protection", "SC-7(5)": "Boundary Protection | Deny by Default — Allow by Exception",
        "SC-8": "Transmission Confidentiality and Integrity",
        "SC-8(1)": "Transmission Confidentiality and Integrity | Cryptographic Protection",
        "SC-12": "Cryptographic Key Establishment and Management", "SC-13": "Cryptographic Protection",
        "SC-23": "Session Authenticity", "SC-28": "Protection of Information at Rest",
        "SC-28(1)": "Protection of Information at Rest | Cryptographic Protection",
        "SC-36": "Distributed Processing and Storage", "SC-39": "Process Isolation",
        "SI-2": "Flaw Remediation", "SI-3": "Malicious Code Protection", "SI-4": "System Monitoring",
        "SI-7": "Software, Firmware, and Information Integrity", "SI-12": "Information Management and Retention",
    })

SOC2 = Framework(
    name="soc2", title="SOC 2 (2017 Trust Services Criteria, revised points of focus 2022)",
    id_pattern=r"CC[1-9]\.\d|A1\.[1-3]|C1\.[12]|PI1\.[1-5]|P[1-8]\.\d",
    scope="every criterion of the Security (common criteria CC1-CC9), Availability (A1) and Confidentiality (C1) "
          "categories; Processing Integrity (PI1) and Privacy (P1-P8) are out of scope",
    catalogue={
        "CC1.1": "Commitment to integrity and ethical values", "CC1.2": "Board independence and oversight",
        "CC1.3": "Structures, reporting lines, authorities and responsibilities",
        "CC1.4": "Commitment to competence", "CC1.5": "Accountability for internal control",
        "CC2.1": "Relevant, quality information", "CC2.2": "Internal communication",
        "CC2.3": "Communication with external parties",
        "CC3.1": "Objectives specified clearly enough to identify risks", "CC3.2": "Risk identification and analysis",
        "CC3.3": "Fraud risk", "CC3.4": "Changes that could affect internal control",
        "CC4.1": "Ongoing and separate evaluations", "CC4.2": "Deficiencies evaluated and communicated",
        "CC5.1": "Control activities that mitigate risks", "CC5.2": "General controls over technology",
        "CC5.3": "Control activities deployed through policies and procedures",
        "CC6.1": "Logical access security software, infrastructure and architectures (encryption included)",
        "CC6.2": "Users registered and authorised before credentials are issued",
        "CC6.3": "Access authorised, modified and removed by role, least privilege and segregation of duties",
        "CC6.4": "Physical access restricted", "CC6.5": "Protections discontinued only after data is removed",
        "CC6.6": "Logical access security measures against threats from outside the system boundaries",
        "CC6.7": "Transmission, movement and removal of information restricted and protected",
        "CC6.8": "Unauthorised or malicious software prevented or detected",
        "CC7.1": "Configuration changes and new vulnerabilities detected",
        "CC7.2": "System components monitored for anomalies", "CC7.3": "Security events evaluated",
        "CC7.4": "Security incidents responded to", "CC7.5": "Recovery from security incidents",
        "CC8.1": "Changes authorised, designed, developed, configured, documented, tested, approved and implemented",
        "CC9.1": "Risk mitigation for business disruptions", "CC9.2": "Vendor and business partner risk",
        "A1.1": "Processing capacity maintained, monitored and evaluated",
        "A1.2": "Environmental protections, software, data backup and recovery infrastructure",
        "A1.3": "Recovery plan procedures tested",
        "C1.1": "Confidential information identified and maintained", "C1.2": "Confidential information disposed of",
    })

ISO_27001 = Framework(
    name="iso-27001", title="ISO/IEC 27001:2022 Annex A",
    id_pattern=r"A\.(5\.([1-9]|[12]\d|3[0-7])|6\.[1-8]|7\.([1-9]|1[0-4])|8\.([1-9]|[12]\d|3[0-4]))",
    scope="every technological control (A.8.1-A.8.34) and a selection of the organisational controls (A.5): "
          "those the configuration of cloud infrastructure can evidence; the other organisational controls, and "
          "the people (A.6) and physical (A.7) controls, are out of scope",
    catalogue={
        "A.5.3": "Segregation of duties", "A.5.9": "Inventory of information and other associated assets",
        "A.5.12": "Classification of information", "A.5.13": "Labelling of information",
        "A.5.14": "Information transfer", "A.5.15": "Access control", "A.5.16": "Identity management",
        "A.5.17": "Authentication information", "A.5.18": "Access rights",
        "A.5.23": "Information security for use of cloud services",
        "A.5.30": "ICT readiness for business continuity", "A.5.33": "Protection of records",
        "A.8.1": "User endpoint devices", "A.8.2": "Privileged access rights",
        "A.8.3": "Information access restriction", "A.8.4": "Access to source code",
        "A.8.5": "Secure authentication", "A.8.6": "Capacity management", "A.8.7": "Protection against malware",
        "A.8.8": "Management of technical vulnerabilities", "A.8.9": "Configuration management",
        "A.8.10": "Information deletion", "A.8.11": "Data masking", "A.8.12": "Data leakage prevention",
        "A.8.13": "Information backup", "A.8.14": "Redundancy of information processing facilities",
        "A.8.15": "Logging", "A.8.16": "Monitoring activities", "A.8.17": "Clock synchronization",
        "A.8.18": "Use of privileged utility programs", "A.8.19": "Installation of software on operational systems",
        "A.8.20": "Networks security", "A.8.21": "Security of network services", "A.8.22": "Segregation of networks",
        "A.8.23": "Web filtering", "A.8.24": "Use of cryptography", "A.8.25": "Secure development life cycle",
        "A.8.26": "Application security requirements",
        "A.8.27": "Secure system architecture and engineering principles", "A.8.28": "Secure coding",
        "A.8.29": "Security testing in development and acceptance", "A.8.30": "Outsourced development",
        "A.8.31": "Separation of development, test and production environments", "A.8.32": "Change management",
        "A.8.33": "Test information", "A.8.34": "Protection of information systems during audit testing",
    })

PCI_DSS = Framework(
    name="pci-dss", title="PCI DSS v4.0",
    id_pattern=r"([1-9]|1[0-2])\.\d{1,2}\.\d{1,2}(\.\d{1,2})?",
    scope="a selection of the defined requirements of Requirements 1-4, 6-8, 10, 11 and 12.5: those about the "
          "configuration of system components (network security controls, secure configuration, stored account data, "
          "cryptography, change control, access, logging, vulnerability scanning, inventory); the other "
          "requirements are procedural, physical or about people, and out of scope",
    catalogue={
        "1.2.1": "Configuration standards for network security control rulesets",
        "1.2.5": "Allowed services, protocols and ports identified, approved and needed",
        "1.3.1": "Inbound traffic to the CDE restricted", "1.3.2": "Outbound traffic from the CDE restricted",
        "1.4.1": "Network security controls between trusted and untrusted networks",
        "1.4.2": "Inbound traffic from untrusted to trusted networks restricted",
        "1.4.4": "Components that store cardholder data not directly accessible from untrusted networks",
        "2.2.1": "Configuration standards developed, implemented and maintained",
        "2.2.4": "Only necessary services, protocols, daemons and functions enabled",
        "2.2.6": "System security parameters configured to prevent misuse",
        "3.5.1": "PAN rendered unreadable anywhere it is stored",
        "3.6.1": "Cryptographic keys protected against disclosure and misuse",
        "3.7.4": "Keys changed at the end of their cryptoperiod",
        "4.2.1": "Strong cryptography for PAN in transmission over open, public networks",
        "6.3.1": "Security vulnerabilities identified and managed",
        "6.3.3": "Components protected from known vulnerabilities by patches",
        "6.5.1": "Changes to production made by established procedures (return to a secure state on failure)",
        "6.5.3": "Pre-production separated from production, enforced with access controls",
        "6.5.4": "Roles separated between production and pre-production: only reviewed, approved changes deployed",
        "7.2.1": "Access control model defined", "7.2.2": "Access assigned by job function and least privilege",
        "7.2.5": "Application and system accounts assigned least privilege",
        "7.3.1": "Access control system restricts access by need to know",
        "8.2.1": "Every user has a unique ID",
        "8.3.2": "Authentication factors unreadable in transmission and storage",
        "10.2.1": "Audit logs enabled and active", "10.3.1": "Read access to audit logs limited",
        "10.3.2": "Audit logs protected from modification", "10.3.3": "Audit logs promptly backed up",
        "10.5.1": "Audit log history retained at least 12 months",
        "10.7.2": "Failures of critical security control systems detected and alerted",
        "11.3.1": "Internal vulnerability scans performed", "11.5.2": "Change-detection mechanism deployed",
        "12.5.1": "Inventory of in-scope system components maintained",
    })

HIPAA = Framework(
    name="hipaa", title="HIPAA Security Rule (45 CFR Part 164, Subpart C)",
    id_pattern=r"164\.3(02|04|06|08|10|12|14|16)\([a-e]\)(\(\d{1,2}\))?(\((i|ii|iii|iv|v|vi|vii|viii|ix|x)\))?"
               r"(\([A-F]\))?",
    scope="every standard and implementation specification of the technical safeguards (164.312), and a "
          "selection of the administrative safeguards (164.308): those infrastructure configuration can evidence; "
          "the other administrative safeguards, the physical "
          "safeguards (164.310, AWS's under the shared responsibility model) and the organisational and "
          "documentation requirements (164.314, 164.316) are out of scope",
    catalogue={
        "164.308(a)(1)(ii)(A)": "Risk analysis", "164.308(a)(1)(ii)(B)": "Risk management",
        "164.308(a)(1)(ii)(D)": "Information system activity review",
        "164.308(a)(3)(ii)(A)": "Authorization and/or supervision",
        "164.308(a)(4)(ii)(B)": "Access authorization",
        "164.308(a)(4)(ii)(C)": "Access establishment and modification",
        "164.308(a)(5)(ii)(B)": "Protection from malicious software", "164.308(a)(5)(ii)(C)": "Log-in monitoring",
        "164.308(a)(6)(ii)": "Response and reporting", "164.308(a)(7)(ii)(A)": "Data backup plan",
        "164.308(a)(7)(ii)(B)": "Disaster recovery plan", "164.308(a)(7)(ii)(C)": "Emergency mode operation plan",
        "164.312(a)(1)": "Access control", "164.312(a)(2)(i)": "Unique user identification",
        "164.312(a)(2)(ii)": "Emergency access procedure", "164.312(a)(2)(iii)": "Automatic logoff",
        "164.312(a)(2)(iv)": "Encryption and decryption", "164.312(b)": "Audit controls",
        "164.312(c)(1)": "Integrity",
        "164.312(c)(2)": "Mechanism to authenticate electronic protected health information",
        "164.312(d)": "Person or entity authentication", "164.312(e)(1)": "Transmission security",
        "164.312(e)(2)(i)": "Integrity controls", "164.312(e)(2)(ii)": "Encryption",
    })

CIS_AWS = Framework(
    name="cis-aws", title="CIS Amazon Web Services Foundations Benchmark v3.0.0",
    id_pattern=r"[1-5]\.\d{1,2}(\.\d{1,2})?",
    scope="every recommendation of the benchmark (Level 1 and Level 2); most concern the account (root user, "
          "password policy, CloudTrail, AWS Config, metric filters), which a stack of this platform does not "
          "configure",
    catalogue={
        "1.1": "Maintain current contact details", "1.2": "Security contact information is registered",
        "1.3": "Security questions are registered", "1.4": "No root user access key exists",
        "1.5": "MFA is enabled for the root user", "1.6": "Hardware MFA is enabled for the root user",
        "1.7": "Eliminate use of the root user for administrative and daily tasks",
        "1.8": "Password policy requires a minimum length of 14", "1.9": "Password policy prevents password reuse",
        "1.10": "MFA is enabled for all IAM users with a console password",
        "1.11": "No access keys set up during initial user setup",
        "1.12": "Credentials unused for 45 days or more are disabled",
        "1.13": "Only one active access key per IAM user", "1.14": "Access keys are rotated every 90 days or less",
        "1.15": "IAM users receive permissions only through groups",
        "1.16": "IAM policies that allow full \"*:*\" administrative privileges are not attached",
        "1.17": "A support role manages incidents with AWS Support",
        "1.18": "IAM instance roles are used for AWS resource access from instances",
        "1.19": "Expired SSL/TLS certificates stored in IAM are removed",
        "1.20": "IAM Access Analyzer is enabled for all regions",
        "1.21": "IAM users are managed centrally (identity federation or AWS Organizations)",
        "1.22": "Access to AWSCloudShellFullAccess is restricted",
        "2.1.1": "S3 bucket policy denies HTTP requests", "2.1.2": "MFA Delete is enabled on S3 buckets",
        "2.1.3": "Data in S3 is discovered, classified and secured",
        "2.1.4": "S3 buckets block public access (bucket settings)",
        "2.2.1": "EBS volume encryption is enabled in all regions", "2.3.1": "RDS instances are encrypted at rest",
        "2.3.2": "RDS auto minor version upgrade is enabled", "2.3.3": "RDS instances are not publicly accessible",
        "2.4.1": "EFS file systems are encrypted",
        "3.1": "CloudTrail is enabled in all regions", "3.2": "CloudTrail log file validation is enabled",
        "3.3": "AWS Config is enabled in all regions",
        "3.4": "S3 bucket access logging is enabled on the CloudTrail bucket",
        "3.5": "CloudTrail logs are encrypted at rest with KMS keys",
        "3.6": "Rotation is enabled for customer-created symmetric KMS keys",
        "3.7": "VPC flow logging is enabled in all VPCs",
        "3.8": "Object-level logging for write events is enabled for S3 buckets",
        "3.9": "Object-level logging for read events is enabled for S3 buckets",
        "4.1": "Unauthorized API calls are monitored", "4.2": "Console sign-in without MFA is monitored",
        "4.3": "Usage of the root user is monitored", "4.4": "IAM policy changes are monitored",
        "4.5": "CloudTrail configuration changes are monitored",
        "4.6": "Console authentication failures are monitored",
        "4.7": "Disabling or scheduled deletion of customer-created KMS keys is monitored",
        "4.8": "S3 bucket policy changes are monitored", "4.9": "AWS Config configuration changes are monitored",
        "4.10": "Security group changes are monitored", "4.11": "Network ACL changes are monitored",
        "4.12": "Changes to network gateways are monitored", "4.13": "Route table changes are monitored",
        "4.14": "VPC changes are monitored", "4.15": "AWS Organizations changes are monitored",
        "4.16": "AWS Security Hub is enabled",
        "5.1": "No network ACL allows ingress from 0.0.0.0/0 to remote server administration ports",
        "5.2": "No security group allows ingress from 0.0.0.0/0 to remote server administration ports",
        "5.3": "No security group allows ingress from ::/0 to remote server administration ports",
        "5.4": "The default security group of every VPC restricts all traffic",
        "5.5": "Routing tables for VPC peering are least access",
        "5.6": "EC2 instance metadata service allows only IMDSv2",
    })

FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (NIST_800_53, SOC2, ISO_27001, PCI_DSS, HIPAA, CIS_AWS)}
FRAMEWORK_NAMES: tuple[str, ...] = tuple(FRAMEWORKS)
