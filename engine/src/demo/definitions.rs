//! The definitions (schemas) of the demo registers.

use super::*;

// ---------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------

pub(super) fn persons_definition() -> DatasetDefinition {
    let p = |a: Attribute| a.personal("personal_code");
    DatasetDefinition {
        name: "persons".into(),
        owner: "PMLP".into(),
        description: "Population register: natural persons and their declared address".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            p(Attribute::new(
                "personal_code",
                DataType::Utf8,
                "Latvian personal code, DDMMYY-CNNNN or (issued since 2017) 32NNNN-NNNNN",
            )
            .required()),
            p(Attribute::new("given_name", DataType::Utf8, "Given name").required()),
            p(Attribute::new("family_name", DataType::Utf8, "Family name").required()),
            p(Attribute::new("birth_date", DataType::Date32, "Date of birth").required()),
            p(Attribute::new("sex", DataType::Utf8, "Sex: M or F").required()),
            p(Attribute::new(
                "declared_address_code",
                DataType::Int64,
                "Address register code of the declared place of residence",
            )),
            p(Attribute::new(
                "municipality",
                DataType::Utf8,
                "Municipality of the declared place of residence",
            )
            .required()),
            p(Attribute::new(
                "citizenship",
                DataType::Utf8,
                "Citizenship, ISO 3166-1 alpha-3 (XXA: stateless or non-citizen); null if unknown",
            )),
            p(Attribute::new(
                "phone",
                DataType::Utf8,
                "Mobile phone number",
            )),
            p(Attribute::new("email", DataType::Utf8, "E-mail address")),
        ],
    }
}

pub(super) fn companies_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "companies".into(),
        owner: "UR".into(),
        description: "Enterprise register: companies, associations and foundations".into(),
        primary_key: vec!["registration_number".into()],
        attributes: vec![
            Attribute::new(
                "registration_number",
                DataType::Utf8,
                "11-digit registration number",
            )
            .required(),
            Attribute::new(
                "name",
                DataType::Utf8,
                "Registered name with its legal form",
            )
            .required(),
            Attribute::new(
                "legal_form",
                DataType::Utf8,
                "Legal form: SIA, AS, IK, ZS, Biedrība or Nodibinājums",
            )
            .required(),
            Attribute::new(
                "registration_date",
                DataType::Date32,
                "Date of registration",
            )
            .required(),
            Attribute::new(
                "status",
                DataType::Utf8,
                "Status: active, liquidated, in_insolvency or reorganised",
            )
            .required(),
            Attribute::new(
                "legal_address_code",
                DataType::Int64,
                "Address register code of the legal address",
            )
            .required(),
            Attribute::new(
                "nace_code",
                DataType::Utf8,
                "Main activity, NACE Rev.2 class",
            )
            .required(),
            Attribute::new(
                "share_capital",
                DataType::Decimal128(18, 2),
                "Registered share capital in EUR; null for forms without capital",
            ),
            Attribute::new("employees", DataType::Int32, "Number of employees").required(),
        ],
    }
}

pub(super) fn addresses_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "addresses".into(),
        owner: "VZD".into(),
        description: "Address register: addressable buildings and apartments".into(),
        primary_key: vec!["address_code".into()],
        attributes: vec![
            Attribute::new(
                "address_code",
                DataType::Int64,
                "9-digit address register code",
            )
            .required(),
            Attribute::new(
                "full_address",
                DataType::Utf8,
                "Full address as written on mail",
            )
            .required(),
            Attribute::new(
                "street",
                DataType::Utf8,
                "Street; null for rural named houses",
            ),
            Attribute::new(
                "house_number",
                DataType::Utf8,
                "House number, or the house name of a rural address",
            )
            .required(),
            Attribute::new("apartment", DataType::Utf8, "Apartment number"),
            Attribute::new("municipality", DataType::Utf8, "Municipality (2021 reform)").required(),
            Attribute::new("postcode", DataType::Utf8, "Postcode, LV-NNNN").required(),
            Attribute::new(
                "latitude",
                DataType::Float64,
                "Latitude of the address point, WGS 84 degrees, inside its municipality",
            )
            .required(),
            Attribute::new(
                "longitude",
                DataType::Float64,
                "Longitude of the address point, WGS 84 degrees, inside its municipality",
            )
            .required(),
        ],
    }
}

pub(super) fn real_estate_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "real_estate".into(),
        owner: "VZD".into(),
        description: "Real-estate cadastre: properties, their owners and cadastral values".into(),
        primary_key: vec!["cadastre_number".into()],
        attributes: vec![
            Attribute::new(
                "cadastre_number",
                DataType::Utf8,
                "11-digit cadastre number; the first 4 digits are the cadastral territory",
            )
            .required(),
            Attribute::new(
                "property_type",
                DataType::Utf8,
                "Property type: land, building, apartment or land_with_building",
            )
            .required(),
            Attribute::new("area_m2", DataType::Float64, "Area in square metres").required(),
            Attribute::new(
                "address_code",
                DataType::Int64,
                "Address register code, if addressed",
            ),
            Attribute::new(
                "owner_code",
                DataType::Utf8,
                "Owner: a personal code or a company registration number",
            )
            .required()
            .personal("owner_code"),
            Attribute::new(
                "owner_kind",
                DataType::Utf8,
                "Owner kind: person or company",
            )
            .required(),
            Attribute::new(
                "cadastral_value",
                DataType::Decimal128(18, 2),
                "Cadastral value in EUR",
            )
            .required(),
            Attribute::new(
                "registered_on",
                DataType::Date32,
                "Date the ownership was registered",
            )
            .required(),
            // Locations describe the land, not its owner: only `owner_code` links a
            // property to a person, and it is the personal attribute.
            Attribute::new(
                "centroid_lon",
                DataType::Float64,
                "Longitude of the property's centroid, WGS 84 degrees (an apartment: its \
                 building's address point)",
            )
            .required(),
            Attribute::new(
                "centroid_lat",
                DataType::Float64,
                "Latitude of the property's centroid, WGS 84 degrees",
            )
            .required(),
            Attribute::new(
                "boundary",
                DataType::Utf8,
                "Boundary of a land property (land or land_with_building) as an RFC 7946 \
                 GeoJSON Polygon string, one closed ring of [longitude, latitude] positions \
                 in WGS 84; null for buildings and apartments",
            ),
        ],
    }
}

pub(super) fn officials_definition() -> DatasetDefinition {
    let p = |a: Attribute| a.personal("personal_code");
    DatasetDefinition {
        name: "officials".into(),
        owner: "UR".into(),
        description: "Enterprise register: officials of companies, associations and foundations \
             (board members, shareholders, beneficial owners) and their right to represent"
            .into(),
        primary_key: vec![
            "registration_number".into(),
            "personal_code".into(),
            "role".into(),
        ],
        attributes: vec![
            Attribute::new(
                "registration_number",
                DataType::Utf8,
                "Registration number of the company (companies.registration_number)",
            )
            .required(),
            p(Attribute::new(
                "personal_code",
                DataType::Utf8,
                "Personal code of the official (persons.personal_code)",
            )
            .required()),
            p(Attribute::new(
                "person_name",
                DataType::Utf8,
                "Given and family name of the official",
            )),
            Attribute::new(
                "role",
                DataType::Utf8,
                "Role: board_member, shareholder or beneficial_owner",
            )
            .required(),
            Attribute::new(
                "share",
                DataType::Decimal128(5, 2),
                "Share of the capital in per cent, for shareholders and beneficial owners \
                 (the shares of a company sum to 100.00); null for board members and for a \
                 beneficial owner by control",
            ),
            Attribute::new(
                "represents",
                DataType::Boolean,
                "Whether the person may represent the company alone (board members only)",
            )
            .required(),
            Attribute::new(
                "since",
                DataType::Date32,
                "Date from which the person holds the role",
            )
            .required(),
        ],
    }
}

/// The five demo dataset definitions, validated, in the order persons, companies,
/// addresses, real_estate, officials.
pub fn definitions() -> Vec<DatasetDefinition> {
    [
        persons_definition(),
        companies_definition(),
        addresses_definition(),
        real_estate_definition(),
        officials_definition(),
    ]
    .into_iter()
    .map(|d| d.validated().expect("the demo definitions are valid"))
    .collect()
}
