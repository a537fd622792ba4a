process SCDEAL_EXPLAIN {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_gpu'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    tuple val(meta), path(adata), path(cell_model)

    output:
    tuple val(meta), path("${prefix}/signature_genes.tsv")                                     , emit: signature
    path("${prefix}/{cluster_signatures.tsv,attributions_top_genes.h5ad,explain_summary.json}"), emit: results
    path("${prefix}/*_mqc.*")                                                                  , emit: mqc
    path("versions.yml")                                                                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    scdeal_explain.py \\
        --adata ${adata} \\
        --cell_model ${cell_model} \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --versions versions.yml \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/signature_genes.tsv ${prefix}/cluster_signatures.tsv ${prefix}/attributions_top_genes.h5ad ${prefix}/explain_summary.json ${prefix}/${meta.id}_${meta.drug_key}_signature_mqc.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        scdeal: "${workflow.manifest.version}"
    END_VERSIONS
    """
}
