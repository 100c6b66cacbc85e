# Record names are spelled in full ("api.example.com") so that they read the
# same as in plans/*.toml, where they carry a trailing dot ("api.example.com.").
# Route 53 records cannot be tagged; each record says which plan it serves.

resource "aws_route53_zone" "example" {
  name    = "example.com"
  comment = "Public zone whose records drctl switches during failover"
}

# --- Per-region entry points (never switched) --------------------------------

resource "aws_route53_record" "api_usw2" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "api-usw2.example.com"
  type    = "A"
  ttl     = 300
  records = var.api_usw2_addresses
}

resource "aws_route53_record" "api_use1" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "api-use1.example.com"
  type    = "A"
  ttl     = 300
  records = var.api_use1_addresses
}

resource "aws_route53_record" "ledger_usw2" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "ledger-usw2.example.com"
  type    = "A"
  ttl     = 300
  records = var.ledger_usw2_addresses
}

resource "aws_route53_record" "ledger_use1" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "ledger-use1.example.com"
  type    = "A"
  ttl     = 300
  records = var.ledger_use1_addresses
}

# --- Records drctl switches ---------------------------------------------------
# Terraform creates them pointing at the home region; afterwards drctl owns
# their targets. ignore_changes keeps a later `terraform apply` from silently
# failing traffic back while a failover is in effect.

# Plan "payments", dns "api": switched by UPSERT.
resource "aws_route53_record" "api" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "api.example.com"
  type    = "CNAME"
  ttl     = 60
  records = [aws_route53_record.api_usw2.fqdn]

  lifecycle {
    ignore_changes = [records]
  }
}

# Plan "payments", dns "payments-db-endpoint": follows the primary payments-db.
resource "aws_route53_record" "payments_db" {
  zone_id = aws_route53_zone.example.zone_id
  name    = "payments-db.example.com"
  type    = "CNAME"
  ttl     = 60
  records = [aws_db_instance.payments.address]

  lifecycle {
    ignore_changes = [records]
  }
}

# Plan "ledger", dns "ledger": weighted pair, set identifier = region.
resource "aws_route53_record" "ledger_weighted_usw2" {
  zone_id        = aws_route53_zone.example.zone_id
  name           = "ledger.example.com"
  type           = "CNAME"
  ttl            = 60
  set_identifier = "us-west-2"
  records        = [aws_route53_record.ledger_usw2.fqdn]

  weighted_routing_policy {
    weight = 100
  }

  lifecycle {
    ignore_changes = [weighted_routing_policy]
  }
}

resource "aws_route53_record" "ledger_weighted_use1" {
  zone_id        = aws_route53_zone.example.zone_id
  name           = "ledger.example.com"
  type           = "CNAME"
  ttl            = 60
  set_identifier = "us-east-1"
  records        = [aws_route53_record.ledger_use1.fqdn]

  weighted_routing_policy {
    weight = 0
  }

  lifecycle {
    ignore_changes = [weighted_routing_policy]
  }
}
