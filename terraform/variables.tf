# --- Networks -----------------------------------------------------------------

variable "vpc_id_usw2" {
  description = "VPC in us-west-2 that holds the primaries and the active groups."
  type        = string
}

variable "vpc_id_use1" {
  description = "VPC in us-east-1 that holds the replicas and the standby groups."
  type        = string
}

variable "subnet_ids_usw2" {
  description = "Private subnets in us-west-2 (at least two AZs) for databases and instances."
  type        = list(string)
}

variable "subnet_ids_use1" {
  description = "Private subnets in us-east-1 (at least two AZs) for databases and instances."
  type        = list(string)
}

variable "vpc_id_euw1" {
  description = "VPC in eu-west-1 that holds the third region's replicas and standby groups."
  type        = string
}

variable "subnet_ids_euw1" {
  description = "Private subnets in eu-west-1 (at least two AZs) for databases and instances."
  type        = list(string)
}

# --- DNS ----------------------------------------------------------------------

variable "api_usw2_addresses" {
  description = "Addresses of the payments API entry point in us-west-2 (A record api-usw2)."
  type        = list(string)
}

variable "checkout_use1_addresses" {
  description = "Addresses of the checkout entry point in us-east-1."
  type        = list(string)
}

variable "checkout_usw2_addresses" {
  description = "Addresses of the checkout entry point in us-west-2."
  type        = list(string)
}

variable "checkout_euw1_addresses" {
  description = "Addresses of the checkout entry point in eu-west-1."
  type        = list(string)
}

variable "api_euw1_addresses" {
  description = "Addresses of the payments API entry point in eu-west-1."
  type        = list(string)
}

variable "api_use1_addresses" {
  description = "Addresses of the payments API entry point in us-east-1 (A record api-use1)."
  type        = list(string)
}

variable "ledger_usw2_addresses" {
  description = "Addresses of the ledger entry point in us-west-2 (A record ledger-usw2)."
  type        = list(string)
}

variable "ledger_use1_addresses" {
  description = "Addresses of the ledger entry point in us-east-1 (A record ledger-use1)."
  type        = list(string)
}

# --- Databases ----------------------------------------------------------------

variable "postgres_engine_version" {
  description = "Major PostgreSQL version of both databases."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "Instance class of primaries and replicas (replicas must be able to take the full load)."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage" {
  description = "Storage of each primary, in GiB."
  type        = number
  default     = 100
}

# --- Compute ------------------------------------------------------------------

variable "ami_ssm_parameter" {
  description = "Public SSM parameter that names the AMI of the instances, resolved per region."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "payments_api_instance_type" {
  description = "Instance type of the payments API groups."
  type        = string
  default     = "m6i.large"
}

variable "ledger_workers_instance_type" {
  description = "Instance type of the ledger worker groups."
  type        = string
  default     = "c6i.large"
}

variable "orders_workers_image" {
  description = "Container image of the orders workers' ECS services (ecs.tf), pinned by tag or digest; one in a private registry (ECR) also needs orders_workers_execution_role_arn."
  type        = string
}

variable "orders_workers_execution_role_arn" {
  description = "Task execution role of the orders workers' tasks (pulls a private image, writes logs); null: none, for a public image."
  type        = string
  default     = null
}

variable "orders_workers_cpu" {
  description = "CPU units of an orders worker task on Fargate (1024 = 1 vCPU)."
  type        = string
  default     = "512"
}

variable "orders_workers_memory" {
  description = "Memory of an orders worker task on Fargate, in MiB (a valid Fargate size for its CPU)."
  type        = string
  default     = "1024"
}

# --- Evidence and access ------------------------------------------------------

variable "evidence_retention_days" {
  description = "Days an evidence object cannot be deleted or overwritten (S3 object lock and GCS retention)."
  type        = number
  default     = 365
}

variable "drctl_trusted_principal_arn" {
  description = "IAM principal (role or user ARN) that runs drctl and may assume the drctl role. It may not assume drctl-observer, and no observer may assume drctl (iam.tf)."
  type        = string
}

variable "drctl_observer_principal_arns" {
  description = "IAM principals (role or user ARNs) of the hosts that run `drctl watch` as observers (docs/watch.md) and may assume the read-only drctl-observer role. The drctl failover role's trust refuses each of them."
  type        = list(string)
  default     = []
}

variable "drctl_watch_oidc" {
  description = "The IAM OIDC provider of the cluster whose observer pods (deploy/watch/kubernetes.yaml) assume drctl-observer by web identity (IRSA, or a projected token): the provider's ARN, its issuer without https:// (oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE), and the watch pods' namespace and service account. Only that service account's tokens are trusted. null: no observer pods."
  type = object({
    provider_arn    = string
    issuer          = string
    namespace       = string
    service_account = string
  })
  default = null
}

variable "gcp_project" {
  description = "GCP project that holds the GCS evidence bucket and the plans' GCP resources (drctl's recovery role is granted in it)."
  type        = string
}

variable "gcp_plan_resources" {
  description = "The plans' GCP resources drctl changes (plans/gcp/): Cloud SQL instances, Cloud DNS managed zones, regional managed instance groups with their autoscalers, Cloud Run services. drctl's writes are granted on these alone (iam.tf); reads stay project-wide. tests/it/iam.rs checks the default against the reference plans."
  type = object({
    sql_instances = list(string)
    dns_zones     = list(string)
    instance_groups = list(object({
      region     = string
      name       = string
      autoscaler = string
    }))
    run_services = list(object({
      region = string
      name   = string
    }))
  })
  default = {
    sql_instances = ["orders-sql", "orders-sql-use4", "catalogue-sql", "catalogue-sql-use4"]
    dns_zones     = ["orders-zone"]
    instance_groups = [
      { region = "us-central1", name = "orders-workers", autoscaler = "orders-workers" },
      { region = "us-east4", name = "orders-workers-use4", autoscaler = "orders-workers-use4" },
    ]
    run_services = [
      { region = "us-central1", name = "orders-api" },
      { region = "us-east4", name = "orders-api" },
      { region = "us-central1", name = "storefront-api" },
      { region = "us-east4", name = "storefront-api" },
    ]
  }
}

variable "gcs_location" {
  description = "Location of the GCS evidence bucket."
  type        = string
  default     = "US"
}

variable "state_prefix" {
  description = "The prefix of drctl's state in the state bucket (`state = \"s3://<bucket>/<prefix>\"`): the bucket policy, the lifecycle's probe rule and the role's probe writes are scoped to it."
  type        = string
  default     = "team"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$", var.state_prefix))
    error_message = "state_prefix is a path of letters, digits, `.`, `_` and `-`, without a leading or trailing `/`."
  }
}

variable "state_region" {
  description = "Region of the S3 bucket for shared state (journals, leases): neither a plan's home nor its standby, so that a failover can take its lease while either is down."
  type        = string
  default     = "us-east-2"
}

# --- Notifications ---------------------------------------------------------------

variable "notify_sns_topic_arns" {
  description = "SNS topics drctl's [[notify]] sinks publish to (docs/notify.md); empty: topics named drctl-* in this account, in any region."
  type        = list(string)
  default     = []
}

variable "notify_event_bus_arns" {
  description = "EventBridge buses drctl's [[notify]] sinks put events on; empty: the default bus of every region."
  type        = list(string)
  default     = []
}

variable "aurora_engine_version" {
  description = "Aurora PostgreSQL engine version of the orders global database (one that supports managed global failover and switchover)."
  type        = string
  default     = "15.4"
}

variable "aurora_instance_class" {
  description = "Instance class of each orders cluster's instance (Aurora global databases need a memory-optimized class)."
  type        = string
  default     = "db.r6g.large"
}
