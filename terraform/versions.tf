terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

# Home region of every plan in plans/.
provider "aws" {
  region = "us-west-2"

  default_tags {
    tags = {
      "managed-by" = "terraform"
    }
  }

  # A drill's marks (drctl:drill-run, -owner, -expires, -restore) are
  # drctl's: an apply during a drill must not take them off, or a sweep
  # without the drill's journal could not find the raise.
  ignore_tags {
    key_prefixes = ["drctl:drill-"]
  }
}

# Standby region: read replicas, standby groups and the S3 evidence bucket.
provider "aws" {
  alias  = "use1"
  region = "us-east-1"

  default_tags {
    tags = {
      "managed-by" = "terraform"
    }
  }

  # A drill's marks (drctl:drill-run, -owner, -expires, -restore) are
  # drctl's: an apply during a drill must not take them off, or a sweep
  # without the drill's journal could not find the raise.
  ignore_tags {
    key_prefixes = ["drctl:drill-"]
  }
}

# Third region: payments' second standby, checkout's last standby, and the
# evidence bucket of checkout (whose home is us-east-1).
provider "aws" {
  alias  = "euw1"
  region = "eu-west-1"

  default_tags {
    tags = {
      "managed-by" = "terraform"
    }
  }

  # A drill's marks (drctl:drill-run, -owner, -expires, -restore) are
  # drctl's: an apply during a drill must not take them off, or a sweep
  # without the drill's journal could not find the raise.
  ignore_tags {
    key_prefixes = ["drctl:drill-"]
  }
}

provider "google" {
  project = var.gcp_project
}
